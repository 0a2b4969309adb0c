WHO = "only a"
