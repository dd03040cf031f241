"""Phase two's Evaluator: TFX's Evaluator, configured by the pipeline
(`pipeline_def.phase_two_eval_config`), with the metrics it gates on
(:mod:`metrics`)."""
