"""An official Confluent registry client against admin-svc's /v1/schemas.

Usage: client_check.py <registry URL> <subject the registry holds>
Lists subjects, fetches the subject's latest version and the same schema by
its id, registers a schema of its own twice (one id) and looks it up. Prints
one line per step; exits non-zero on the first difference.
"""
import json
import sys

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient


def main() -> int:
    url, subject = sys.argv[1], sys.argv[2]
    client = SchemaRegistryClient({"url": url})
    subjects = client.get_subjects()
    print("subjects", subjects)
    assert subject in subjects, f"{subject} not in {subjects}"
    latest = client.get_latest_version(subject)
    print("latest", latest.subject, latest.version, latest.schema_id, latest.schema.schema_type)
    assert latest.schema.schema_type == "JSON"
    assert json.loads(latest.schema.schema_str)["type"] == "object"
    by_id = client.get_schema(latest.schema_id)
    assert by_id.schema_str == latest.schema.schema_str, "the schema by id differs from the version's"
    print("by id", latest.schema_id, "same schema")
    mine = Schema(json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}}), "JSON")
    first = client.register_schema("python-client-check", mine)
    again = client.register_schema("python-client-check", mine)
    assert first == again, f"registering twice gave ids {first} and {again}"
    found = client.lookup_schema("python-client-check", mine)
    assert found.schema_id == first and found.version >= 1
    print("registered", first, "version", found.version)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
