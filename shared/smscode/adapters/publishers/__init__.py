"""Queue publishers, each implementing `service_layer.ports.Publisher`."""
