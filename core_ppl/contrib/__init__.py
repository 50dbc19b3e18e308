"""Extensions of core_ppl that follow NumPyro's ``numpyro.contrib`` layout.

``core_ppl.contrib.control_flow`` holds :func:`~core_ppl.contrib.control_flow.scan`.
"""
