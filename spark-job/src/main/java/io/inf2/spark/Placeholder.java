package io.inf2.spark; final class Placeholder {}
