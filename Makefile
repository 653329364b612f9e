# The two commands of the README: `make test` and `make demo`.
# ENGINES: the local engines engine-up starts (tests run against each one that is up).
ENGINES ?= dockerd20 dockerd26
# TLS_INSTANCE: an extra dockerd 26 on 127.0.0.1 over TCP + mutual TLS (the remote-engine tests); empty: none.
TLS_INSTANCE ?= tls

.PHONY: install engine-up engine-down lint test demo golden clean

install:
	scripts/install

engine-up: install
	@for e in $(ENGINES); do ENGINE=$$e scripts/engine-up >/dev/null || exit 1; done
	@if [ -n "$(TLS_INSTANCE)" ]; then ENGINE=dockerd26 INSTANCE=$(TLS_INSTANCE) TLS=1 scripts/engine-up >/dev/null; fi

engine-down:
	scripts/engine-down

lint: install
	scripts/lint

test: install engine-up
	scripts/test

demo: install engine-up
	scripts/demo

golden: install
	UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q -m golden

clean:
	-scripts/engine-down
	rm -rf .venv .engine
