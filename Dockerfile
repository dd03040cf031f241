# One image for the pipeline at scale: every task of the compiled pipeline
# (`python -m pipeline compile --image ...`, the Kubeflow / Vertex AI
# default image) and Dataflow's SDK workers (`--beam dataflow`, its
# --sdk_container_image).
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/on-device-classifier:TAG .
#   docker push REGION-docker.pkg.dev/PROJECT/REPO/on-device-classifier:TAG
#
# Build it from the checkout you compile from: the compiled pipeline's cache
# keys carry that checkout's module-code version.
# tests/test_image.py installs the project the way this file does and runs
# the compiled pipeline's executors from it (no Docker on the test machine).

# Beam's boot program, which Dataflow starts in a custom SDK container.
FROM apache/beam_python3.10_sdk:2.59.0 AS beam

FROM python:3.10-slim-bookworm

# libusb: tflite-support's metadata writer, which embeds the labels.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libusb-1.0-0 \
 && rm -rf /var/lib/apt/lists/*

ENV TF_USE_LEGACY_KERAS=1 \
    TF_ENABLE_ONEDNN_OPTS=1 \
    TF_CPP_MIN_LOG_LEVEL=3 \
    PYTHONHASHSEED=0 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The locked packages first: they change less often than the code.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir "pip==24.2" \
 && pip install --no-cache-dir --no-deps -r /tmp/requirements.lock \
 && rm /tmp/requirements.lock

# KServe's model server, in an environment of its own (its protobuf and
# pandas are not TFX's): phase two's serving check starts it
# (components/cloud/launch.py reads PIPELINE_KSERVE_PYTHON).
COPY requirements-kserve.lock /tmp/requirements-kserve.lock
RUN python -m venv /opt/kserve-venv \
 && /opt/kserve-venv/bin/pip install --no-cache-dir --no-deps \
      -r /tmp/requirements-kserve.lock \
 && rm /tmp/requirements-kserve.lock
ENV PIPELINE_KSERVE_PYTHON=/opt/kserve-venv/bin/python

# The project, installed (not editable); the sources are removed after.
COPY setup.py /tmp/src/setup.py
COPY pipeline /tmp/src/pipeline
COPY components /tmp/src/components
RUN pip install --no-cache-dir --no-deps --no-build-isolation /tmp/src \
 && rm -rf /tmp/src

# The curated schema, where the compiled pipeline reads it
# (pipeline/runners/vertex.py: IMAGE_SCHEMA_DIR).
COPY schema /opt/on-device-classifier/schema

COPY --from=beam /opt/apache/beam /opt/apache/beam
WORKDIR /home
# Dataflow starts the boot program; Kubeflow and Vertex AI run each task's
# own command (python -m tfx.orchestration.kubeflow.v2.container...).
ENTRYPOINT ["/opt/apache/beam/boot"]
