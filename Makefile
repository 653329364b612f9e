# The two commands of the README: `make test` and `make demo`.
.PHONY: install test demo golden clean

install:
	scripts/install

test: install
	scripts/test

demo: install
	scripts/demo

golden: install
	UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q -m golden

clean:
	rm -rf .venv .engine
