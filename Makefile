# The two commands of the README. Both set up a fresh Debian machine first (idempotent).
.PHONY: setup demo test

setup:
	bash deploy/bootstrap.sh

demo: setup
	riskpulse demo

test: setup
	bash deploy/run-tests.sh
