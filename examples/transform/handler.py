"""Sanitise a customer record before it is forwarded to a legacy system."""

import json
import re

ALLOWED = ("name", "email", "country", "consent")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def problem(message):
    return {"statusCode": 400, "body": {"error": message}}


def handle(event, context):
    try:
        record = json.loads(event.body or b"null")
    except ValueError as e:
        return problem(f"the body is not JSON: {e}")
    if not isinstance(record, dict):
        return problem("send one JSON object, e.g. {\"name\": \"Ada\", \"email\": \"ada@example.no\"}")
    clean = {k: record[k] for k in ALLOWED if k in record}
    email = str(clean.get("email", "")).strip().lower()
    if not EMAIL.match(email):
        return problem("email is missing or not an email address")
    clean["email"] = email
    if "name" in clean:
        clean["name"] = " ".join(str(clean["name"]).split()).title()
    if "country" in clean:
        clean["country"] = str(clean["country"]).strip().upper()[:2]
    clean["consent"] = bool(clean.get("consent", False))
    dropped = sorted(set(record) - set(ALLOWED))
    return {"statusCode": 200, "body": {"record": clean, "dropped": dropped}}
