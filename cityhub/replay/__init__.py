"""Recording live MQTT traffic and replaying it (or a scenario) through the rules with a simulated clock."""
