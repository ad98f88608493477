/**
 * Machine unlearning: making a trained model forget part of what it knows while keeping the rest. {@link
 * io.peft4j.unlearn.ForgetSplit} says which examples are to be forgotten, {@link io.peft4j.unlearn.ForgettingObjective}
 * is GS-LoRA's bounded forgetting loss (with GS-LoRA++'s prototype terms, {@link io.peft4j.unlearn.ClassPrototypes}),
 * plugged into the {@link io.peft4j.train.Trainer} as its per-batch objective; {@link io.peft4j.unlearn.SpeakerLines}
 * builds the small real setting (speaker classification on tiny Shakespeare).
 */
package io.peft4j.unlearn;
