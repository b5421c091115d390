"""`python -m intake [serve|relay|migrate|audit|outbox|clinic add|rotate-key|revoke]`"""

import os
import sys

from care_shared import cli
from intake.bootstrap import create_app, make_runtime
from intake.clinics import add_clinic_command, revoke_clinic_command, rotate_key_command
from intake.settings import IntakeSettings


def _clinic_commands(sub) -> None:
    clinic = sub.add_parser("clinic", help="partner clinics and their API keys")
    clinic_sub = clinic.add_subparsers(dest="clinic_command", required=True)
    add = clinic_sub.add_parser("add", help="register a clinic and print its API key (shown once)")
    add.add_argument("--name", required=True)
    add.add_argument("--key-file", help="keep the key in this file and reuse it next time (demo only)")
    add.set_defaults(handler=lambda args: add_clinic_command(make_runtime(), args.name, args.key_file))
    rotate = clinic_sub.add_parser("rotate-key", help="replace a clinic's API key; the new one is shown once")
    rotate.add_argument(
        "--key-env",
        default="CLINIC_KEY",
        help="environment variable holding the current key (not an argument, so it stays out of shell history)",
    )
    rotate.set_defaults(
        handler=lambda args: rotate_key_command(make_runtime(), os.environ.get(args.key_env, ""))
    )
    revoke = clinic_sub.add_parser(
        "revoke", help="revoke a clinic's keys by the clinic's id (no key needed), in every service"
    )
    revoke.add_argument("--clinic-id", required=True)
    revoke.set_defaults(handler=lambda args: revoke_clinic_command(make_runtime(), args.clinic_id))


if __name__ == "__main__":
    sys.exit(
        cli.main(
            sys.argv[1:],
            settings=IntakeSettings(),
            make_runtime=make_runtime,
            make_app=create_app,
            extra=_clinic_commands,
        )
    )
