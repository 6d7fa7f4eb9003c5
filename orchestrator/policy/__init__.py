"""The policy engine: who may do what (people) and which tool calls agents may make (agents).

Modules, each importing only those above it in this list:

    rules.py   facts, rules, condition functions and approval settings: pure parsing, no files
    files.py   the five policy files: their names, reading them, the version hash of a set
    lint.py    `frontdesk policy check`: every problem of a set of files (rules, files)
    engine.py  PolicyEngine: loads a set that lints clean, reloads it, decides (rules, files, lint)

So the dependency goes one way: engine -> lint -> files -> rules.
"""
