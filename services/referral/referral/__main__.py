"""`python -m referral [serve|relay|migrate|rebuild|audit|outbox|coordinator add|rotate-key|revoke|demo-seed]`"""

import os
import sys

from care_shared import cli
from care_shared.rebuild import progress_bar
from referral.bootstrap import create_app, make_runtime
from referral.operations import (
    add_coordinator_command,
    demo_seed_command,
    revoke_coordinator_command,
    rotate_coordinator_key_command,
)
from referral.rebuild import rebuild_and_compare
from referral.settings import ReferralSettings


def _commands(sub) -> None:
    coordinator = sub.add_parser("coordinator", help="referral coordinators and their API keys")
    coordinator_sub = coordinator.add_subparsers(dest="coordinator_command", required=True)
    add = coordinator_sub.add_parser("add", help="register a coordinator and print the API key (shown once)")
    add.add_argument("--name", required=True)
    add.add_argument("--key-file", help="keep the key in this file and reuse it next time (demo only)")
    add.set_defaults(handler=lambda args: add_coordinator_command(make_runtime(), args.name, args.key_file))
    rotate = coordinator_sub.add_parser(
        "rotate-key", help="replace a coordinator's key; the new one is shown once"
    )
    rotate.add_argument(
        "--key-env", default="COORDINATOR_KEY", help="environment variable holding the current key"
    )
    rotate.set_defaults(
        handler=lambda args: rotate_coordinator_key_command(make_runtime(), os.environ.get(args.key_env, ""))
    )
    revoke = coordinator_sub.add_parser(
        "revoke", help="revoke a coordinator's key by the coordinator's id (no key needed)"
    )
    revoke.add_argument("--coordinator-id", required=True)
    revoke.set_defaults(handler=lambda args: revoke_coordinator_command(make_runtime(), args.coordinator_id))

    seed = sub.add_parser("demo-seed", help="demo directory clinics and a demo coordinator (idempotent)")
    seed.add_argument(
        "--key-file", default="var/demo-coordinator.key", help="where the coordinator's key is kept"
    )
    seed.add_argument(
        "--partner-clinic-id",
        help="link the first demo clinic to this partner clinic (its region becomes its patients')",
    )
    seed.set_defaults(
        handler=lambda args: demo_seed_command(make_runtime(), args.key_file, args.partner_clinic_id)
    )


if __name__ == "__main__":
    sys.exit(
        cli.main(
            sys.argv[1:],
            settings=ReferralSettings(),
            make_runtime=make_runtime,
            make_app=create_app,
            extra=_commands,
            rebuild=lambda db, _settings, progress: rebuild_and_compare(
                db, progress_bar("replaying referrals") if progress else None
            ),
        )
    )
