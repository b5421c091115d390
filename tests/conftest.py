pytest_plugins = ["care_shared.testing.fixtures"]
