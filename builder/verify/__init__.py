"""Verification of built artifacts: a cell started as its pod would be (``pod``) and the testinfra
suites in tests/infra run against it (``runner``).

Nothing is re-exported here: importing ``builder.verify.values`` must not load the pod runner and the
Docker SDK.
"""
