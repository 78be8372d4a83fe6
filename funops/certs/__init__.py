"""The fleet side of ACME certificates (issue 27): the ACME phase of apply (`phase`), HTTP-01 tokens
on the edge nodes (`presenter`), and what `funops certs` shows (`show`); what each Certificate needs
after a gather is decided for the plan by funops/certificates.py. The node side is
funops/kinds/cert.py; the protocol, funops/acme/."""
