"""Verification of built artifacts: a cell started as its pod would be (``pod``) and the testinfra
suites in tests/infra run against it (``runner``)."""

from builder.verify.pod import Pod, VerifyContext, VerifyError, cleanup
from builder.verify.runner import SuiteResult, new_run_id, run_suite

__all__ = ["Pod", "SuiteResult", "VerifyContext", "VerifyError", "cleanup", "new_run_id",
           "run_suite"]
