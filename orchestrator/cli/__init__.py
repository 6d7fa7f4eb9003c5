"""The `frontdesk` console script: dev stack commands and the REST API client commands.

    main.py            the parser: the dev stack commands, and each `*_cmd` module's `register`
    task_cmd.py        frontdesk task …         checkpoint_cmd.py  frontdesk checkpoint …
    budget_cmd.py      frontdesk budget …       switch_cmd.py      frontdesk switch …
    policy_cmd.py      frontdesk policy …       catalog_cmd.py     frontdesk catalog …
    api_client.py      the HTTP client of the REST API: token, URL, errors (CliError)
    parsers.py         argparse helpers of the API commands (`leaf`, JSON flag values)
    output.py          tables and `--json` output

The dependency goes one way: main -> *_cmd -> parsers -> api_client, and *_cmd -> output
(policy_cmd and catalog_cmd work on local files, not through the API).
"""
