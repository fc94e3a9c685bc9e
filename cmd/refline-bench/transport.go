package main

func transportMain(args []string) error { return nil }
