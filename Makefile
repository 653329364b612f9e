# The two commands of the README: `make test` and `make demo`.
# ENGINES: the local engines engine-up starts (tests run against each one that is up).
ENGINES ?= dockerd20 dockerd26
# TLS_INSTANCE: an extra dockerd 26 on 127.0.0.1 over TCP + mutual TLS (the remote-engine tests); empty: none.
TLS_INSTANCE ?= tls
# FLEET_INSTANCES: extra dockerd 26 runners with the containerd image store (the fleet tests: shared registry cache).
FLEET_INSTANCES ?= fleet-a fleet-b

.PHONY: install registry-up registry-down engine-up fleet-up engine-down lint test demo golden clean

install:
	scripts/install

# The local registries (plain, and TLS + htpasswd) the fleet tests push to and engines share the base image through.
registry-up:
	@scripts/registry-up >/dev/null
	@REGISTRY_AUTH=1 scripts/registry-up >/dev/null

registry-down:
	scripts/registry-down

engine-up: install registry-up
	@for e in $(ENGINES); do ENGINE=$$e scripts/engine-up >/dev/null || exit 1; done
	@if [ -n "$(TLS_INSTANCE)" ]; then ENGINE=dockerd26 INSTANCE=$(TLS_INSTANCE) TLS=1 scripts/engine-up >/dev/null; fi
	@$(FLEET_UP)

fleet-up: install registry-up
	@$(FLEET_UP)

# After the matrix engines: the first of them pushes the base image, the fleet runners pull it.
FLEET_UP = for i in $(FLEET_INSTANCES); do ENGINE=dockerd26 INSTANCE=$$i SNAPSHOTTER=containerd scripts/engine-up >/dev/null || exit 1; done

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
	-scripts/registry-down
	rm -rf .venv .engine
