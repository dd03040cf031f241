"""The TFLite pusher: component, executor, and the plain functions they use."""
