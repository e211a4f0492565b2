"""Load tests of the toy store: sync vs deferred checkout, with queue depth, results and graphs.

``python -m loadtests --help`` runs them; notebooks read the results with
``from loadtests import results, plots``. Nothing here is imported by labqueue itself.
"""
