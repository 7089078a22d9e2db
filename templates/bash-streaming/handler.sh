#!/usr/bin/env bash
# ironfaas bash-streaming handler: the platform runs `bash handler.sh` once per request.
#
#   stdin   the request body, streamed as it arrives
#   stdout  the response body, streamed to the caller as it is written
#   stderr  the function's logs
#
# The request itself is in the environment (OpenFaaS watchdog names):
#   Http_Method   GET, POST, ...
#   Http_Path     /  or  /sub/path
#   Http_Query    the raw query string, e.g. a=1&b=2 (unset if there is none)
#   Http_<Header> one per request header, '-' turned into '_':
#                 Http_Content_Type, Http_User_Agent, Http_X_Call_Id, ...
# Your function's own environment (stack.yml `environment:`) is there too, and
# secrets are files in $IRONFAAS_SECRETS_DIR (/var/openfaas/secrets/ in the sandbox).
#
# The status is always 200 (it is sent before the script runs), so report
# failures in the body. A non-zero exit ends the response early.
set -euo pipefail

echo "method: ${Http_Method:-}"
echo "path: ${Http_Path:-/}"
echo "query: ${Http_Query:-}"
echo "content-type: ${Http_Content_Type:-}"
echo "body, upper-cased:"

# Stream the body back as it arrives. To read it whole instead: body=$(cat)
tr '[:lower:]' '[:upper:]'
