"""Where circuits run: backends by name (Aer, Runtime), the Aer probability sampler, job journal, QPU cost,
readout calibration and mitigated kernel estimators.

The only subpackage that imports ``qiskit_aer`` and ``qiskit_ibm_runtime``.
"""
