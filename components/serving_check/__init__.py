"""PhaseTwoServingCheck: phase two's serving model, built and proved in a
model server before it may be pushed, as TFX's InfraValidator proves a
model in TensorFlow Serving."""

# The model servers the check can use: KServe's, started from its own
# environment, or none (the serving model in process only). Here, apart
# from the component, so settings read them without TFX.
KSERVE = 'kserve'
IN_PROCESS = 'in-process'
SERVERS = (KSERVE, IN_PROCESS)
