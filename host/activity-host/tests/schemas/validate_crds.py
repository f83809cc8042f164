"""Validates custom resources against the CRDs that define them, strictly.

    python validate_crds.py CRD_DIR MANIFEST...

Each document of each manifest must be of a kind one of CRD_DIR's CustomResourceDefinitions
defines (group/version in `apiVersion`), and must validate against that version's
openAPIV3Schema. Unknown fields are errors, as `kubectl apply --validate=strict` makes them:
every object schema that lists properties and does not preserve unknown fields is closed.
Prints one line per document checked; exits 1 on the first error.
"""
import pathlib
import sys

import jsonschema
import yaml


def closed(schema):
    """The schema with every listed-properties object closed to other fields."""
    if isinstance(schema, dict):
        schema = {k: closed(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    return schema


def main():
    crd_dir, manifests = pathlib.Path(sys.argv[1]), sys.argv[2:]
    schemas = {}
    for path in sorted(crd_dir.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                schema = closed(version["schema"]["openAPIV3Schema"])
                # metadata is the API server's ObjectMeta: not part of the CRD's schema.
                schema["properties"]["metadata"] = {"type": "object"}
                schemas[(f"{group}/{version['name']}", kind)] = schema
    for manifest in manifests:
        for doc in yaml.safe_load_all(pathlib.Path(manifest).read_text()):
            if not doc:
                continue
            key = (doc.get("apiVersion"), doc.get("kind"))
            if key not in schemas:
                sys.exit(f"{manifest}: no CRD in {crd_dir} defines {key[1]} in {key[0]}")
            errors = sorted(
                jsonschema.Draft4Validator(schemas[key]).iter_errors(doc),
                key=lambda e: list(e.absolute_path),
            )
            name = doc.get("metadata", {}).get("name")
            for e in errors:
                print(f"{manifest}: {key[1]} {name}: {'.'.join(map(str, e.absolute_path))}: {e.message}")
            if errors:
                sys.exit(1)
            print(f"{manifest}: {key[1]} {name}: valid")


main()
