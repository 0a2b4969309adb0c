"""`skylift load`: a stepped load test with Locust, the knee it finds, and its chart.

`steps.py` is pure (steps, knee, comparison with a baseline, the saved JSON);
`locust_run.py` drives Locust; `chart.py` draws the PNG.
"""
