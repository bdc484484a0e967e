#!/usr/bin/python
"""What Zuul's executor provides as ``zuul_return``, for running our playbooks outside Zuul: merge
``data`` into ``$ZUUL_JOBDIR/work/results.json`` (where the executor reads a job's returned data)."""

import json
import os

from ansible.module_utils.basic import AnsibleModule


def merge(old, new):
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            merge(old[key], value)
        else:
            old[key] = value
    return old


def main():
    module = AnsibleModule(argument_spec={"data": {"type": "dict", "required": True},
                                          "path": {"type": "str", "default": None}})
    path = module.params["path"] or os.path.join(os.environ["ZUUL_JOBDIR"], "work", "results.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    merge(results, module.params["data"])
    with open(path + ".tmp", "w") as f:
        json.dump(results, f)
    os.replace(path + ".tmp", path)
    module.exit_json(changed=True)


if __name__ == "__main__":
    main()
