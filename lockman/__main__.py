from lockman.launch import entry

entry()
