from care_shared.migrations import run_env

run_env()
