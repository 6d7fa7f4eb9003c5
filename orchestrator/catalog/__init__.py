"""The catalog: the tools, agents and workflow definitions the control plane and the workers run.

Modules, each importing only those above it in this list:

    context.py      ToolContext: what a tool implementation gets besides its arguments
    registry.py     Catalog: registering, looking up, pinning and comparing definitions (the bottom)
    definitions.py  ToolDef, AgentDef, StepDef, WorkflowDef: declarations of the typed API
    api.py          the typed developer API (`@tool`, `agent`, `workflow`, CatalogModule, register)
    validate.py     what `frontdesk catalog validate` reports (registry, and the policy rules)
    yaml_defs.py    workflow definitions in YAML (registry, validate)
    loader.py       load_catalog: the packages and YAML files of `catalog_packages` (registry, yaml_defs)

So the dependency goes one way: loader -> yaml_defs -> validate -> registry, and
api -> definitions -> registry; the API, the workers and the CLI call `loader.load_catalog`.
"""
