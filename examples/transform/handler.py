"""Sanitise a customer record and forward it to the legacy customer system.

Unknown fields are dropped, the email checked and lower-cased, the name title-cased, the
country cut to its two-letter code; the clean record is translated to the legacy system's
dialect (upper-case keys, CONSENT "Y"/"N") and POSTed to $LEGACY_URL/customers. The answer
carries the legacy system's status code and answer, what was sent, and the fields that were
dropped. Bad input is refused with 400; a backend that is down or refuses the record gives 502.
"""

import json
import os
import re
import socket
import urllib.error
import urllib.request

ALLOWED = ("name", "email", "country", "consent")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
TIMEOUT_SECONDS = 5
# The backend is on this machine: never go through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def problem(status, message, **extra):
    return {"statusCode": status, "body": {"error": message, **extra}}


def sanitise(record):
    """The clean record, or an error message."""
    email = str(record.get("email", "")).strip().lower()
    if not EMAIL.match(email):
        return None, "email is missing or not an email address"
    name = " ".join(str(record.get("name", "")).split()).title()
    if not name:
        return None, "name is missing"
    country = str(record.get("country", "")).strip().upper()[:2]
    if not COUNTRY.match(country):
        return None, "country is missing or not a two-letter code such as NO"
    consent = record.get("consent", False)
    if not isinstance(consent, bool):
        return None, "consent must be true or false"
    return {"name": name, "email": email, "country": country, "consent": consent}, None


def handle(event, context):
    if event.method != "POST":
        return problem(405, "send the record with POST")
    try:
        record = json.loads(event.body or b"null")
    except ValueError as e:
        return problem(400, f"the body is not JSON: {e}")
    if not isinstance(record, dict):
        return problem(400, 'send one JSON object, e.g. {"name": "Ada", "email": "ada@example.no", "country": "NO"}')
    clean, error = sanitise(record)
    if error:
        return problem(400, error)
    dropped = sorted(set(record) - set(ALLOWED))

    base = os.environ.get("LEGACY_URL", "").rstrip("/")
    if not base:
        return problem(500, "LEGACY_URL is not set: give the function the legacy backend's URL in stack.yml")
    legacy = {
        "NAME": clean["name"],
        "EMAIL": clean["email"],
        "COUNTRY": clean["country"],
        "CONSENT": "Y" if clean["consent"] else "N",
    }
    request = urllib.request.Request(
        base + "/customers",
        data=json.dumps(legacy).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with OPENER.open(request, timeout=TIMEOUT_SECONDS) as answer:
            status, raw = answer.status, answer.read()
    except urllib.error.HTTPError as answer:
        status, raw = answer.code, answer.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        if isinstance(reason, ConnectionRefusedError):
            reason = "connection refused"
        elif isinstance(reason, (socket.timeout, TimeoutError)):
            reason = f"no answer within {TIMEOUT_SECONDS} s"
        return problem(502, f"the legacy backend at {base} is unreachable: {reason}")
    try:
        answer = json.loads(raw)
    except ValueError:
        return problem(502, f"the legacy backend at {base} answered {status} with a body that is not JSON")
    if not 200 <= status < 300:
        return problem(502, f"the legacy backend at {base} refused the record ({status})", legacy=answer)
    return {
        "statusCode": status,
        "body": {"legacy": {"status": status, "answer": answer}, "sent": legacy, "dropped": dropped},
    }
