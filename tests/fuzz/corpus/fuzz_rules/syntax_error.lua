rule { name = "bad" on = }
