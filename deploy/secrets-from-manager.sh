#!/usr/bin/env bash
# Write ../secrets.yaml (git-ignored) from Secret Manager, just before `gcloud app deploy`.
# Each secret's name is the variable's name, e.g. LINE_CHANNEL_SECRET.
set -euo pipefail
cd "$(dirname "$0")/.."
names=(LINE_CHANNEL_SECRET LINE_CHANNEL_ACCESS_TOKEN GOOGLE_SPREADSHEET_ID TASKS_TOKEN PUBLIC_URL)
umask 077
{
  echo "env_variables:"
  for name in "${names[@]}"; do
    value=$(gcloud secrets versions access latest --secret="$name")
    printf '  %s: "%s"\n' "$name" "${value//\"/\\\"}"
  done
} > secrets.yaml
echo "wrote secrets.yaml (${#names[@]} variables); it is git-ignored"
