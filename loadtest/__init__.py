"""The mixed-workload load test behind ``scripts/loadtest`` (README.md, Load test).

prepare.py builds a PostgreSQL database (migrations, the demo tenants, a 10k-org tenant, the personas and their
tokens) and writes plan.json; locustfile.py drives gunicorn with those personas and records every acknowledged
write; sampler.py watches PostgreSQL's lock waits meanwhile; verify.py prints the summary and checks that the
database holds exactly what was acknowledged.
"""
