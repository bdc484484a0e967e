"""Python the verification suites run with the agent tree's own interpreter."""

# Python run by the tree's own interpreter: import every extension module the tree ships (stdlib and
# wheels) and leave ``count`` and ``failed`` ({module file: error}) behind; checks append their report.
IMPORT_CHECK = r"""
import importlib, json, os, sys, sysconfig
roots = [os.path.join(sys.base_prefix, 'lib', 'python3.11', 'lib-dynload'), sysconfig.get_paths()['purelib']]
failed, count = {}, 0
for root in roots:
    for dirpath, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), root)
            if not f.endswith('.so') or '.libs' in rel or os.path.basename(rel).startswith(('_test', 'xx')):
                continue
            count += 1
            try:
                importlib.import_module(rel.split('.')[0].replace('/', '.'))
            except BaseException as exc:
                failed[rel] = repr(exc)[:200]
"""
