#!/bin/sh
# The first tenant and its admin, from the environment; the `bootstrap` service of docker-compose.yml
# runs it after `frontdesk migrate`. Safe to run again: it only creates what is missing.
#
#   FRONTDESK_BOOTSTRAP_TENANT          tenant id, e.g. acme
#   FRONTDESK_BOOTSTRAP_TENANT_NAME     its display name (default: the id)
#   FRONTDESK_BOOTSTRAP_ADMIN_EMAIL     the first admin's e-mail (their sign-in name)
#   FRONTDESK_BOOTSTRAP_ADMIN_PASSWORD  their password, at least 12 characters; it reaches
#                                       `frontdesk user add` on standard input, never as an argument
#
# Re-running: `frontdesk tenant add` refuses an id that exists, so the tenant is added only when
# `frontdesk tenant list` does not show it; the admin is added only when `frontdesk user list` does
# not show them in the tenant. A person who is already there is left exactly as they are: their
# password is not reset to the one in the environment and roles an admin changed stay changed.
set -eu

tenant="${FRONTDESK_BOOTSTRAP_TENANT:?set FRONTDESK_BOOTSTRAP_TENANT (the first tenant id)}"
name="${FRONTDESK_BOOTSTRAP_TENANT_NAME:-$tenant}"
email="${FRONTDESK_BOOTSTRAP_ADMIN_EMAIL:?set FRONTDESK_BOOTSTRAP_ADMIN_EMAIL (the first admin)}"

# `python -c PROGRAM VALUE < JSON` exits 0 when VALUE is listed in the JSON on standard input.
has_tenant='import json, sys; sys.exit(sys.argv[1] not in [t["id"] for t in json.load(sys.stdin)])'
has_person='import json, sys; sys.exit(sys.argv[1].strip().lower() not in [p["email"] for p in json.load(sys.stdin)["items"]])'

# A failing list (database down, schema too old) stops the script here: `set -e` and no pipe.
tenants="$(frontdesk tenant list --json)"
if printf '%s' "$tenants" | python -c "$has_tenant" "$tenant"; then
    echo "bootstrap: tenant $tenant exists"
else
    frontdesk tenant add "$tenant" --name "$name"
fi

people="$(frontdesk user list --tenant "$tenant" --json)"
if printf '%s' "$people" | python -c "$has_person" "$email"; then
    echo "bootstrap: $email is already in tenant $tenant; left as it is"
else
    password="${FRONTDESK_BOOTSTRAP_ADMIN_PASSWORD:?set FRONTDESK_BOOTSTRAP_ADMIN_PASSWORD (at least 12 characters)}"
    printf '%s' "$password" | frontdesk user add "$email" --tenant "$tenant" --role admin --password-stdin
fi
echo "bootstrap: done; sign in as $email"
