"""pallet.engine — containers: an image snapshot plus an OCI spec, run by a runtime under a monitor.

    from pallet.engine.core import Engine, CreateOptions
    from pallet.engine.options import Config
    eng = Engine(store, runroot)
    c = eng.create(CreateOptions(Config(Image="busybox", Cmd=["true"])))   # row, snapshot, /etc files
    eng.start(c)                       # forks the monitor, returns when the container runs
    eng.stop(c, timeout=10); eng.kill(c, 9); eng.remove(c, force=True)
    eng.get("name-or-id"); eng.list(); eng.inspect(c)   # docker's JSON shape

Modules (one concern each):
  core       Engine: the mixins below in one object
  creating   plan (the options checked, the image, Config/HostConfig) and create (row, snapshot, /etc
             files, volumes); the bundle
  containers the containers table: rows, directories, the per-container lock; refresh reconciles a row
             with the kernel (a dead process is Exited)
  lifecycle  start (through the monitor), what the monitor reports back, kill, stop, remove, destroy
  waiting    docker's wait conditions, woken by the monitor's exit FIFO and pidfds (exitwatch)
  inspection docker's inspect JSON
  images     the image of a new container: resolved in the store (short-name candidates) or pulled
  defaults   docker's Config/HostConfig of a new container from the image's config and the options
  options    CreateOptions and its records (docker's Config/HostConfig/NetworkingConfig names), from_api:
             what create/run/update take
  running    Engine.run (create + start, attached); prefork/Prefork: the CLI's early-fork fast path
  names      container names: the allowed characters, docker's random ADJECTIVE_NOUN
  signals    signals by name or number (--stop-signal, kill -s)
  model      the container row; is pid N still the process we started (start-time check, pidfds)
  spec       runtime-spec config.json from Config/HostConfig: docker's caps, masks, mounts, rlimits
  seccomp    moby's default profile (seccomp_default.json, Apache-2.0) -> linux.seccomp
  users      -u USER[:GROUP] resolved in the container's /etc/passwd, /etc/group, never leaving its root
  monitor    conmon's role: parent of the container's init, json-file logs, attach socket, exit codes, --rm;
             monitorproc: its exec'd entry point (from a process that runs threads); exitwatch
  attach     AttachStream: the client side of the attach socket as (stream, bytes) records, stdin, resize,
             signals, for a caller that renders them (the CLI's terminal pump: pallet.cli.attachtty)
  logs       iter_logs: the json-file log as (stream, time, bytes) records (tail, since/until, follow)
  events     docker's events: recorded where they happen (container_event, emit) into the store's log
             (pallet.store.events); Engine.events: docker's messages, filtered, following (inotify)
  execs      exec through the container's runtime; top (docker's Titles/Processes)
  runtimes   runc/crun/any runc-compatible binary through its CLI; palletrt: pallet.runtime in-process
  snapshots  adapter to pallet.layers (container snapshots)
  hostconfig the checks of the HostConfig records (limits, devices, ulimits, sysctls, caps, restart, health)
  volumes    named volumes, binds and tmpfs mounts
  limits     cgroup limits, update and stats (the counters: pallet.linux.cgroups)
  networking --network modes and endpoints; attach/detach through pallet.network around the init's
             start; /etc/hosts addresses; NetworkSettings; connect/disconnect
  ports      -p/--publish as docker reads it; port, PORTS
  files      /etc/hostname, hosts, resolv.conf; cp, diff, commit, export
  freezer    pause/unpause: is the cgroup frozen, freeze or thaw it through the runtime
  health     HEALTHCHECK state; healthproc: the checker process a monitor starts
  restart    the restart-policy loop around the monitor
  views      ps: docker's filters and the Status column
  units      sizes and durations as docker reads and writes them

A process's cgroup (stats, top's pids, frozen, OOM kills, leftover directories) is read through
pallet.linux.cgroups (`of_pid`) only: no engine module parses /proc/PID/cgroup itself.

Imports inside the engine form no circle and nothing here imports pallet.cli
(tests/test_architecture.py reads the graph from the code).
"""
