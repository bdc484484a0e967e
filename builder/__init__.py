"""guestforge: build and verify DBaaS guest images from one matrix."""

__version__ = "0.1.0"
