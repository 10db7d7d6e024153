"""The test suite's plugins: tests/support holds the fixtures, servers and helpers every test
directory shares (no test module imports another)."""

pytest_plugins = ["tests.support.fixtures", "tests.support.workspace", "tests.support.threads"]
