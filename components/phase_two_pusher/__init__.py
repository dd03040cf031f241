"""PhaseTwoPusher: phase two's blessed model, made servable, proved and
pushed as the next version a model server loads."""
