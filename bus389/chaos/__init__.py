"""Fault injection under load (issue 7): the schedule, the workload, the faults, the independent checker.

``bus389 chaos run`` drives :func:`bus389.chaos.run.run_chaos`; ``bus389 chaos check`` re-checks a
run's history; ``bus389 chaos consistency`` compares the services' stores with their inboxes.
"""
