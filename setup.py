"""Installable package for the on-device spectrogram classifier pipeline.

The exact environment is pinned in requirements.lock (installed with
``--no-deps`` by scripts/setup_env.sh); the ranges below only document the
direct dependencies for anyone installing the package into their own stack.
"""
import setuptools

setuptools.setup(
    name='two-phase-tflite-pipeline',
    version='0.1.0',
    description=('TFX pipeline that trains the on-device first phase of the '
                 'Two-Phase Predictions pattern and pushes a quantized '
                 'TensorFlow Lite model.'),
    packages=setuptools.find_packages(include=['pipeline', 'pipeline.*',
                                               'components', 'components.*']),
    package_data={'': ['*.pbtxt', 'templates/*.html']},
    python_requires='>=3.10,<3.11',
    install_requires=[
        'tfx==1.16.0',
        'tensorflow==2.16.2',
        'tf-keras==2.16.0',
        'apache-beam[gcp]==2.59.0',
        'numpy==1.26.4',
        'protobuf==3.20.3',
        'pillow',
        'scipy',
        'croniter',
        # predict and --stream run the pushed models without TensorFlow.
        'ai-edge-litert==2.3.0',
        # The default data's sampled instruments (with Debian's
        # libfluidsynth3; without it synth falls back to procedural data).
        'pyfluidsynth==1.4.0',
    ],
)
