"""SMS providers, each implementing `service_layer.ports.Provider`."""
