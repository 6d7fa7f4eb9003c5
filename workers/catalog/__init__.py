"""The catalog: tools, agents and workflow definitions registered as versioned code."""
