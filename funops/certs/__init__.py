"""The fleet side of ACME certificates (issue 27): what each Certificate needs after a gather
(plan/certificates.py, in the plan), the ACME phase of apply (`phase`), HTTP-01 tokens on the edge nodes (`presenter`), and
what `funops certs` shows (`show`). The node side is funops/kinds/cert.py; the protocol,
funops/acme/."""
