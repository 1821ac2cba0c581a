"""The templates nodeops bootstrap renders into a project (packaged as nodeops.templates)."""
