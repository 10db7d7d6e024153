from lockman.cli import entry

entry()
