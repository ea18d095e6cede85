# pallet: `make demo` and `make test` install everything they need, idempotently.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PALLET := $(VENV)/bin/pallet
APT_PACKAGES := busybox-static skopeo umoci runc crun podman conmon docker-registry jq \
                curl openssl apache2-utils libseccomp2 iproute2 util-linux debootstrap wrk hyperfine \
                python3 python3-venv catatonit containerd strace git graphviz librsvg2-bin nftables iperf3
# The venv is made from Debian's python3 (3.11, built with PGO and LTO): every pallet command starts
# and imports ~15% faster than with a default source build (pyenv's), and start-up is the hot path.
VENV_PYTHON := $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
PYTEST_ARGS ?=

.PHONY: install apt venv seccomp demo test lint bench clean tour

install: apt venv seccomp

# apt-get only runs when a package is missing.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing apt packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(VENV_PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# pip's console scripts replaced by ones that start Python with -S and read pallet's code bundle (see the
# script); made again when a source changes, so that the bundle serves every module
$(VENV)/.launchers: $(VENV)/.installed scripts/fast-launchers.py $(shell find src/pallet -name '*.py')
	$(PY) scripts/fast-launchers.py $(VENV)/bin
	$(PY) -m compileall -q src/pallet >/dev/null
	@touch $@

venv: $(VENV)/.installed $(VENV)/.launchers

# moby's default seccomp profile, as package data, from Debian's packaged moby source
seccomp:
	@bash scripts/seccomp-profile.sh

demo: install
	@bash scripts/demo.sh

test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# docs/tour.md and docs/tour-diagram.svg, made again from live runs (tests/test_tour.py runs the same commands)
tour: install
	$(PY) scripts/tour.py

lint: venv
	$(VENV)/bin/ruff check src tests

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# OCI runtime-tools validation suite against pallet-runtime (~5 min; builds the suite the first
# time). Kept out of `make test`; CI runs it as its own step. Fails only on unexpected failures.
.PHONY: conformance
conformance: install
	bash tests/runtime/conformance.sh
