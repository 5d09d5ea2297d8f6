"""The station pipeline, without gRPC: admit → (gate) → queue → describe → event.

A pushed Inspect stream and (later) a pulled camera differ only in how frames arrive; both feed a
:class:`~edge.station.session.SessionCore` (a sans-I/O state machine: inputs in, typed events out)
whose description jobs run on the :class:`~edge.station.worker.Scheduler`'s single engine thread.
Nothing in this package imports protobuf, opens sockets or reads the clock: adapters do that.
"""
