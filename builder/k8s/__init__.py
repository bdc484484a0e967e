"""A cell's Kubernetes bundle: StatefulSet, Services, Secret templates and kustomization, checked
against the Kubernetes schemas and the PSA "restricted" profile."""
