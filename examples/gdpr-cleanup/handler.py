"""GDPR erasure: delete every record of one data subject from the customer database.

POST {"subject": "ada@example.no"} deletes the subject's customer record, orders, support
tickets and newsletter subscription in one transaction and answers how many records went
from each table; {"dry_run": true} only counts them. The gateway lets only the admin call
this function (annotation com.ironfaas.auth: basic).

The database is SQLite (standard library) in the function's work dir ($IRONFAAS_WORK_DIR,
shared by its replicas and kept across restarts), seeded with demo customers on first use.
SQLite has no logins, so the example stands in for a database server's: when the database is
seeded it keeps a PBKDF2 hash of the secret db-password, and the function opens it only when
the secret it is given (/var/openfaas/secrets/db-password) matches. With a real database you
would pass the secret as the connection's password instead.
"""

import hashlib
import hmac
import json
import os
import re
import sqlite3

# /var/openfaas/secrets in the sandbox (as on OpenFaaS); the replica's own folder without it.
SECRET = os.path.join(os.environ.get("IRONFAAS_SECRETS_DIR", "/var/openfaas/secrets"), "db-password")
DB_NAME = "customers.sqlite"
ITERATIONS = 100_000
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Tables holding personal data, in the order they are emptied, and how each finds the subject.
TABLES = {
    "orders": "customer_id IN (SELECT id FROM customers WHERE email = ?)",
    "support_tickets": "customer_id IN (SELECT id FROM customers WHERE email = ?)",
    "newsletter": "email = ?",
    "customers": "email = ?",
}
SCHEMA = """
CREATE TABLE db_login (salt BLOB NOT NULL, hash BLOB NOT NULL, iterations INTEGER NOT NULL);
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                     item TEXT NOT NULL, total REAL NOT NULL);
CREATE TABLE support_tickets (id INTEGER PRIMARY KEY,
                              customer_id INTEGER NOT NULL REFERENCES customers(id),
                              subject TEXT NOT NULL);
CREATE TABLE newsletter (email TEXT PRIMARY KEY);
CREATE TABLE erasure_log (at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
                          subject_sha256 TEXT NOT NULL, records INTEGER NOT NULL);
"""
CUSTOMERS = [
    (1, "ada@example.no", "Ada Lovelace"),
    (2, "grace@example.no", "Grace Hopper"),
    (3, "alan@example.no", "Alan Turing"),
]
ORDERS = [(1, "Analytical engine", 1200.0), (1, "Punched cards", 15.5),
          (2, "Compiler manual", 42.0), (3, "Bombe rotor", 310.0)]
TICKETS = [(1, "Engine jams on loop"), (3, "Rotor misaligned")]
NEWSLETTER = ["ada@example.no", "grace@example.no"]

_verified = None  # the secret that opened the database last, to skip PBKDF2 on every call


class Refused(Exception):
    """A failure with its status code and message for the caller."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def answer(status, body):
    return {"statusCode": status, "body": body}


def read_secret():
    try:
        with open(SECRET, "rb") as f:
            value = f.read().rstrip(b"\n")
    except OSError:
        raise Refused(500, "the secret db-password is not mounted at " + SECRET + ": create it with "
                      "`ironfaas secret create db-password` and list it under secrets: in stack.yml")
    if not value:
        raise Refused(500, "the secret db-password is empty")
    return value


def seed(db, password):
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password, salt, ITERATIONS)
    for statement in filter(str.strip, SCHEMA.split(";")):
        db.execute(statement)  # one by one: executescript would end the transaction
    db.execute("INSERT INTO db_login VALUES (?, ?, ?)", (salt, digest, ITERATIONS))
    db.executemany("INSERT INTO customers VALUES (?, ?, ?)", CUSTOMERS)
    db.executemany("INSERT INTO orders (customer_id, item, total) VALUES (?, ?, ?)", ORDERS)
    db.executemany("INSERT INTO support_tickets (customer_id, subject) VALUES (?, ?)", TICKETS)
    db.executemany("INSERT INTO newsletter VALUES (?)", [(e,) for e in NEWSLETTER])


def open_database():
    """The database, seeded when new, after checking the secret against its login."""
    global _verified
    work = os.environ.get("IRONFAAS_WORK_DIR")
    if not work:
        raise Refused(500, "no work dir (IRONFAAS_WORK_DIR): deploy with readOnlyRootFilesystem: false")
    password = read_secret()
    db = sqlite3.connect(os.path.join(work, DB_NAME), timeout=10, isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("BEGIN IMMEDIATE")
    try:
        login = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'db_login'").fetchone()
        if login is None:
            seed(db, password)
            _verified = password
            return db
        if password != _verified:
            salt, stored, iterations = db.execute("SELECT salt, hash, iterations FROM db_login").fetchone()
            if not hmac.compare_digest(hashlib.pbkdf2_hmac("sha256", password, salt, iterations), stored):
                raise Refused(500, "the database refused the secret db-password: it is not the password "
                              "the database was created with")
            _verified = password
        return db
    except BaseException:
        db.execute("ROLLBACK")
        db.close()
        raise


def parse(event):
    if event.method != "POST":
        raise Refused(405, 'send POST {"subject": "EMAIL"} to erase a data subject')
    try:
        request = json.loads(event.body or b"null")
    except ValueError as e:
        raise Refused(400, f"the body is not JSON: {e}")
    if not isinstance(request, dict):
        raise Refused(400, 'send one JSON object, e.g. {"subject": "ada@example.no"}')
    unknown = sorted(set(request) - {"subject", "dry_run"})
    if unknown:
        raise Refused(400, f"unknown fields {unknown}: send only subject and dry_run")
    subject = request.get("subject")
    if not isinstance(subject, str) or not EMAIL.match(subject.strip()):
        raise Refused(400, "subject is missing or not an email address")
    dry_run = request.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise Refused(400, "dry_run must be true or false")
    return subject.strip().lower(), dry_run


def handle(event, context):
    try:
        subject, dry_run = parse(event)
        db = open_database()
    except Refused as e:
        return answer(e.status, {"error": e.message})
    try:
        counts = {
            table: db.execute(f"SELECT count(*) FROM {table} WHERE {where}", (subject,)).fetchone()[0]
            for table, where in TABLES.items()
        }
        if sum(counts.values()) == 0:
            db.execute("ROLLBACK")
            return answer(404, {"error": f"no records of data subject {subject}"})
        if dry_run:
            db.execute("ROLLBACK")
            return answer(200, {"subject": subject, "dry_run": True, "would_delete": counts})
        deleted = {
            table: db.execute(f"DELETE FROM {table} WHERE {where}", (subject,)).rowcount
            for table, where in TABLES.items()
        }
        db.execute("INSERT INTO erasure_log (subject_sha256, records) VALUES (?, ?)",
                   (hashlib.sha256(subject.encode()).hexdigest(), sum(deleted.values())))
        db.execute("COMMIT")
        return answer(200, {"subject": subject, "deleted": deleted})
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    finally:
        db.close()
