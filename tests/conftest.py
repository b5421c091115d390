import pytest

pytest_plugins = ["care_shared.testing.fixtures"]

# Run alone, after the rest (`make test` runs them in a second, serial pass): the fault suite
# times how fast every service comes back, and the schemathesis run keeps both cores busy; on
# a two-core machine sharing it with another test worker measures the neighbour, not us.
SERIAL = ("tests/faults/", "tests/e2e/test_bad_input.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)
